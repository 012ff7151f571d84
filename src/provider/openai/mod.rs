//! OpenAI's Images API, and Azure OpenAI's dialect of it.

mod request;
mod response;

pub use request::{ImageRequest, Operation, Quality, Reference, RequestOptions};
pub use response::{DecodeError, Delivery, ImagesResponse, decode_response};
