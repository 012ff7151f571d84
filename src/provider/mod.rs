//! A thin client for the two Images API operations genimg uses.
//!
//! Thin on purpose: the request is a map of exactly the fields the model takes, and the answer
//! is decoded leniently, because an image that was paid for must never be lost to a schema
//! change on the server's side.

mod error;
mod http;
pub mod openai;
mod retry;

pub use error::{ApiError, ErrorBody, StatusError};
pub use http::{
    Client, ClientConfig, ClientError, GeneratedImage, Service, USER_AGENT, endpoint_url,
    request_url,
};
pub use openai::{
    DecodeError, Delivery, ImageRequest, ImagesResponse, Operation, Quality, Reference,
    RequestOptions, decode_response,
};
pub use retry::{Fatal, MAX_RETRY_AFTER, RetryPolicy, Verdict, classify, retry_after};
