ALTER TABLE `jobs` ADD `fair_start` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `fair_finish` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `approved_turn` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `pin_rank` integer;