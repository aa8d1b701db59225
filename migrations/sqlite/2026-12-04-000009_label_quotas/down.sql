DROP TABLE label_quotas;
