CREATE INDEX `jobs_fair_start` ON `jobs` (`state`,`fair_start`);--> statement-breakpoint
CREATE INDEX `jobs_fair_finish` ON `jobs` (`fair_finish`);