ALTER TABLE `jobs` ADD `lease_generator_id` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `lease_expires_at` integer;--> statement-breakpoint
ALTER TABLE `jobs` ADD `blocked_reason` text;--> statement-breakpoint
CREATE INDEX `jobs_lease` ON `jobs` (`lease_generator_id`);