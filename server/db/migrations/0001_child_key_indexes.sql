CREATE INDEX `fingerprints_visitor` ON `fingerprints` (`visitor_id`);--> statement-breakpoint
CREATE INDEX `jobs_prompt` ON `jobs` (`prompt_id`);--> statement-breakpoint
CREATE INDEX `sessions_visitor` ON `sessions` (`visitor_id`);