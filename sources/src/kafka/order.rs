//! Which fetched records of a partition to keep, so the pipeline sees each
//! offset once and in order.
//!
//! * Records below the partition's next offset are replays (a fetch after a
//!   pause or seek may start earlier): dropped.
//! * A jump in offsets is checked once by fetching again from the expected
//!   offset. Kafka has real gaps (transaction markers, compaction), which a
//!   second fetch shows again and are then accepted; but a broker that
//!   exposes a later batch before an earlier one is visible (tansu's
//!   `memory://` engine under concurrent produce does, see
//!   docs/decisions/0034-what-tansu-taught-us.md) shows the missing records on the second fetch.

use std::ops::Range;

/// A jump from the expected offset to a later one.
pub type Gap = (i64, i64);

#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Indexes of the records to forward.
    pub keep: Range<usize>,
    /// A gap seen for the first time: fetch again from its start.
    pub refetch: Option<Gap>,
}

/// `offsets`: one partition's fetched offsets, ascending. `expected`: its
/// next offset (`None` before its first record). `confirmed`: a gap already
/// seen twice, to accept.
pub fn in_order(offsets: &[i64], expected: Option<i64>, confirmed: Option<Gap>) -> Verdict {
    let start = expected.map_or(0, |e| offsets.partition_point(|o| *o < e));
    let nothing = |refetch| Verdict {
        keep: start..start,
        refetch,
    };
    let Some(first) = offsets.get(start) else {
        return nothing(None);
    };
    if let Some(e) = expected
        && *first > e
        && confirmed != Some((e, *first))
    {
        return nothing(Some((e, *first)));
    }
    let mut end = start + 1;
    while end < offsets.len() {
        let (prev, next) = (offsets[end - 1], offsets[end]);
        if next != prev + 1 && confirmed != Some((prev + 1, next)) {
            return Verdict {
                keep: start..end,
                refetch: Some((prev + 1, next)),
            };
        }
        end += 1;
    }
    Verdict {
        keep: start..end,
        refetch: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_dropped_and_contiguous_records_kept() {
        let v = in_order(&[5, 6, 7, 8], Some(7), None);
        assert_eq!(
            v,
            Verdict {
                keep: 2..4,
                refetch: None
            }
        );
        assert_eq!(in_order(&[5, 6], Some(7), None).keep, 2..2);
        assert_eq!(
            in_order(&[3, 4], None, None).keep,
            0..2,
            "a partition's first record may be past 0"
        );
    }

    #[test]
    fn a_gap_is_fetched_again_once_and_then_accepted() {
        // Expected 10, the fetch starts at 14: ask again from 10.
        let v = in_order(&[14, 15], Some(10), None);
        assert_eq!(
            v,
            Verdict {
                keep: 0..0,
                refetch: Some((10, 14))
            }
        );
        // The second fetch shows the same jump: a real gap.
        assert_eq!(in_order(&[14, 15], Some(10), Some((10, 14))).keep, 0..2);
        // A jump inside a batch: keep what comes before it.
        let v = in_order(&[10, 11, 20, 21], Some(10), None);
        assert_eq!(
            v,
            Verdict {
                keep: 0..2,
                refetch: Some((12, 20))
            }
        );
        assert_eq!(
            in_order(&[12, 13], Some(12), Some((12, 20))).keep,
            0..2,
            "the records appeared"
        );
    }
}
