//! Camera images: the original JPEG and its thumbnail, from the media folder.

pub mod get;
