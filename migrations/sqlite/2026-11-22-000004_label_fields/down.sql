ALTER TABLE products DROP COLUMN label_fields;
