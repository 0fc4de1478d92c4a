CREATE TABLE `proxy_identities` (
	`subject_hash` text PRIMARY KEY NOT NULL,
	`visitor_id` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
