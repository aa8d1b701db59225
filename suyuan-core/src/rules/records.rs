//! What a record does to its batch: pre-harvest interval, inspection block and release, custody.
