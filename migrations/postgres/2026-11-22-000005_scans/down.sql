ALTER TABLE products DROP COLUMN distribution_area;
DROP TABLE settings;
DROP TABLE scan_region_days;
DROP TABLE label_scan_devices;
DROP TABLE label_scan_stats;
DROP TABLE scans;
