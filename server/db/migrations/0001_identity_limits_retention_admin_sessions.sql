CREATE TABLE `admin_sessions` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `admin_sessions_expires_at` ON `admin_sessions` (`expires_at`);--> statement-breakpoint
ALTER TABLE `prompts` ADD `held` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `prompts` ADD `flagged_by` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `offer_visitor_id` integer REFERENCES visitors(id);--> statement-breakpoint
CREATE INDEX `sessions_visitor` ON `sessions` (`visitor_id`);--> statement-breakpoint
CREATE INDEX `sessions_offer` ON `sessions` (`offer_visitor_id`);--> statement-breakpoint
ALTER TABLE `visitors` ADD `last_seen_at` integer;--> statement-breakpoint
ALTER TABLE `visitors` ADD `recovery_salt` text;--> statement-breakpoint
ALTER TABLE `visitors` ADD `recovery_code_hash` text;--> statement-breakpoint
ALTER TABLE `visitors` ADD `recovery_link_hash` text;--> statement-breakpoint
ALTER TABLE `visitors` ADD `muted` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `visitors_recovery_link_hash_unique` ON `visitors` (`recovery_link_hash`);--> statement-breakpoint
CREATE INDEX `fingerprints_visitor` ON `fingerprints` (`visitor_id`);--> statement-breakpoint
CREATE INDEX `jobs_prompt` ON `jobs` (`prompt_id`);--> statement-breakpoint
-- Admin sessions moved to admin_sessions: old ones end (the admin logs in again once).
DELETE FROM `sessions` WHERE `kind` = 'admin';