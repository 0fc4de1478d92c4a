CREATE TABLE `generator_credentials` (
	`name` text PRIMARY KEY NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`last_seen_at` integer
);
--> statement-breakpoint
ALTER TABLE `jobs` ADD `failed_on` text DEFAULT '[]' NOT NULL;