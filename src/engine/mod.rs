//! Making the images of a plan: live, request by request, with the pace the service allows.

pub mod batch;
pub mod live;
pub mod pace;
