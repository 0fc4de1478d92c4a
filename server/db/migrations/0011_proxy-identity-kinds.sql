-- Proxy accounts name the header they match (security review of issue 9): an admin's grant with
-- an "@" was an email (already lower case), any other grant and every group account a user name
-- (oauth2-proxy always sends X-Forwarded-User, and group accounts were named after it first).
UPDATE `accounts` SET `name` = 'proxy:email:' || substr(`name`, 7) WHERE `name` LIKE 'proxy:%' AND `proxy_grant` = 1 AND instr(`name`, '@') > 0;--> statement-breakpoint
UPDATE `accounts` SET `name` = 'proxy:user:' || substr(`name`, 7) WHERE `name` LIKE 'proxy:%' AND `name` NOT LIKE 'proxy:email:%';
