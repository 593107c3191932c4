//! Services behind the routes: the push and fetch paths.

pub mod claims;
pub mod gc;
pub mod lifecycle;
pub mod receive_pack;
pub mod response_cache;
pub mod upload_pack;
