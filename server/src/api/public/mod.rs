//! What anyone may read without an account: the public story a consumer's scan page shows.

pub mod recall_status;
pub mod story;
