ALTER TABLE `prompts` ADD `original_prompt` text;--> statement-breakpoint
ALTER TABLE `prompts` ADD `original_negative_prompt` text;--> statement-breakpoint
ALTER TABLE `prompts` ADD `deny_reason` text;--> statement-breakpoint
ALTER TABLE `prompts` ADD `hidden` integer DEFAULT false NOT NULL;