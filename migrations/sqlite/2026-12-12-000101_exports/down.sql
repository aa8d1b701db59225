DROP INDEX records_event_time;
DROP TABLE exports;
