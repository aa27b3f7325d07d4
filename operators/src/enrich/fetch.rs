//! Reading metadata hashes from Redis: every key of a batch in one
//! pipelined round trip (HGETALL each), through the shared [`RedisLink`] so
//! the timeout and the pause after a failure apply.

use std::collections::HashMap;

use crate::redis::{RedisLink, RedisLinkError};

/// The hashes of `keys`, in order; a key that does not exist answers an
/// empty hash.
pub(crate) async fn hgetall_many(
    link: &RedisLink,
    node: &str,
    keys: &[String],
) -> Result<Vec<HashMap<String, String>>, RedisLinkError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.hgetall(key.as_str());
    }
    link.run(node, move |mut connection| async move {
        pipe.query_async(&mut connection).await
    })
    .await
}
