DROP TABLE label_voids;
DROP TABLE label_activations;
DROP TABLE label_runs;
DROP TABLE signing_keys;
