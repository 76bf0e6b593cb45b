-- Verified launches per UTC day and platform, for the owner console's charts: each verified
-- launch adds one with an upsert. The LMS family is copied in so that a deleted platform's
-- launches still count for its family.
CREATE TABLE launch_days (
    day {text} NOT NULL,
    platform_id {text} NOT NULL,
    product_family_code {text} NOT NULL,
    launches {bigint} NOT NULL,
    PRIMARY KEY (day, platform_id)
);
