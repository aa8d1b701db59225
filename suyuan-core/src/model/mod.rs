//! The domain model: what the API accepts and returns, independent of how rows are stored.

pub mod alert;
pub mod batch;
pub mod device;
pub mod enums;
pub mod export;
pub mod label;
pub mod org;
pub mod product;
pub mod record;
pub mod scan;
pub mod site;
pub mod text;
pub mod tracking;
pub mod user;

pub use alert::*;
pub use batch::*;
pub use device::*;
pub use enums::*;
pub use export::*;
pub use label::*;
pub use org::*;
pub use product::*;
pub use record::*;
pub use scan::*;
pub use site::*;
pub use tracking::*;
pub use user::*;
