-- Labels: which lines a product's printed labels show under its name (a JSON list of field names), see
-- suyuan_core::model::LabelField. Existing products get the default: brand, certification marks, producer.
ALTER TABLE products ADD COLUMN label_fields TEXT NOT NULL DEFAULT '["brand","certifications","producer"]';
