//! The batch collection of [`RedisSharedCache`](super::RedisSharedCache)
//! (see [`SharedCache::collect_or_join`](crate::store::shared::SharedCache::collect_or_join)).
//!
//! Keys, per section (`{account}` is the hash tag, as for the entries):
//!
//! * `dutycard:v1:{<account>}:collect:<section>`: `<room>|<collector
//!   token>`, with a `PX` of the collection's hold plus a second (a
//!   collector that died frees the section by itself);
//! * `dutycard:v1:{<account>}:wants:<section>`: the entries handed to the
//!   collector, one `<id> <generation> <lease token>` each (ids never hold
//!   a space: see `Layer::entry`), with a `PX` so nothing is left behind.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Script;

use super::{Inner, keys, millis, split_stored};
use crate::store::shared::{Collect, EntryKey, JoinState, SharedError, Wanted};

/// `KEYS`: collect, wants; `ARGV`: this caller's token, the hold (ms), the
/// room it would have as collector, then one `<id> <generation> <token>`
/// per handed entry. Answers 1 (joined), 2 (collecting) or 3 (no room, in
/// the running collection or in the caller's own batch).
const COLLECT_OR_JOIN_LUA: &str = r"
local c = redis.call('GET', KEYS[1])
local n = #ARGV - 3
if c then
  local sep = string.find(c, '|', 1, true)
  local room = tonumber(string.sub(c, 1, sep - 1)) or 0
  if redis.call('LLEN', KEYS[2]) + n <= room then
    for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
    redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[2]) + 5000)
    return 1
  end
  return 3
end
if tonumber(ARGV[3]) <= 0 then return 3 end
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. ARGV[1], 'PX', tonumber(ARGV[2]) + 1000)
return 2
";

/// `KEYS`: collect, wants; `ARGV`: the collector's token. Ends its
/// collection (when it still holds it) and answers every handed entry.
const TAKE_LUA: &str = r"
local c = redis.call('GET', KEYS[1])
if c then
  local sep = string.find(c, '|', 1, true)
  if sep and string.sub(c, sep + 1) == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return items
";

/// `KEYS`: per entry its value and lease; `ARGV`: per entry its lease
/// token and the oldest acceptable `fetched_at` (ms). Answers per entry
/// `{1, value}`, `{2, ''}` (still leased by that token) or `{3, ''}`.
const JOINED_LUA: &str = r"
local out = {}
for i = 1, #KEYS / 2 do
  if redis.call('GET', KEYS[2 * i]) == ARGV[2 * i - 1] then
    out[i] = {2, ''}
  else
    local v = redis.call('GET', KEYS[2 * i - 1])
    local at = v and tonumber(string.match(v, '^(%-?%d+):'))
    if at and at >= tonumber(ARGV[2 * i]) then out[i] = {1, v} else out[i] = {3, ''} end
  end
end
return out
";

/// The three scripts, loaded once per cache.
pub(super) struct Scripts {
    collect: Script,
    take: Script,
    joined: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            collect: Script::new(COLLECT_OR_JOIN_LUA),
            take: Script::new(TAKE_LUA),
            joined: Script::new(JOINED_LUA),
        }
    }
}

/// The collection's two keys of `section` of `account`.
fn collection_keys(account: &str, section: &str) -> [String; 2] {
    [
        format!("dutycard:v1:{{{account}}}:collect:{section}"),
        format!("dutycard:v1:{{{account}}}:wants:{section}"),
    ]
}

impl Inner {
    pub(super) async fn collect_or_join(
        self: &Arc<Self>,
        account: &str,
        section: &str,
        wanted: Vec<Wanted>,
        hold: Duration,
        room: usize,
    ) -> Result<Collect, SharedError> {
        let [collect, wants] = collection_keys(account, section);
        let token = self.token();
        let mut conn = self.conn.clone();
        let mut invocation = self.join.collect.prepare_invoke();
        invocation
            .key(&collect)
            .key(&wants)
            .arg(&token)
            .arg(millis(hold))
            .arg(room);
        for want in &wanted {
            invocation.arg(format!("{} {} {}", want.id, want.generation, want.token));
        }
        let state: i64 = self
            .call("collect", invocation.invoke_async(&mut conn))
            .await?;
        Ok(match state {
            1 => Collect::Joined,
            2 => Collect::Collecting(token),
            _ => Collect::Alone,
        })
    }

    pub(super) async fn take_wanted(
        self: &Arc<Self>,
        account: &str,
        section: &str,
        collector: &str,
    ) -> Result<Vec<Wanted>, SharedError> {
        let [collect, wants] = collection_keys(account, section);
        let mut conn = self.conn.clone();
        let mut invocation = self.join.take.prepare_invoke();
        invocation.key(&collect).key(&wants).arg(collector);
        let items: Vec<String> = self
            .call("take", invocation.invoke_async(&mut conn))
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let mut parts = item.splitn(3, ' ');
                Some(Wanted {
                    id: parts.next()?.to_owned(),
                    generation: parts.next()?.to_owned(),
                    token: parts.next()?.to_owned(),
                })
            })
            .collect())
    }

    pub(super) async fn joined(
        self: &Arc<Self>,
        entries: &[(EntryKey, String, i64)],
    ) -> Result<Vec<JoinState>, SharedError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.join.joined.prepare_invoke();
        for (key, token, fresh_since) in entries {
            let [value, _, lease] = keys(key);
            invocation.key(value).key(lease).arg(token).arg(fresh_since);
        }
        let states: Vec<(i64, Vec<u8>)> = self
            .call("joined", invocation.invoke_async(&mut conn))
            .await?;
        states
            .into_iter()
            .map(|(state, payload)| match state {
                1 => split_stored(&payload).map(|(at, value)| JoinState::Value(at, value)),
                2 => Ok(JoinState::Waiting),
                _ => Ok(JoinState::Gone),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collection_keys_are_namespaced_versioned_and_tagged_by_account() {
        assert_eq!(
            collection_keys("main", "incidents"),
            [
                "dutycard:v1:{main}:collect:incidents".to_owned(),
                "dutycard:v1:{main}:wants:incidents".to_owned(),
            ]
        );
    }
}
