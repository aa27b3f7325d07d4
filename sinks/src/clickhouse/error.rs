//! What can go wrong talking to ClickHouse, and which failures are worth a
//! retry.

/// Errors of the ClickHouse sink, migrations and probe.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse at {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("column `{column}`: somaflow cannot write Arrow {arrow} as ClickHouse {clickhouse}")]
    Unsupported {
        column: String,
        arrow: String,
        clickhouse: String,
    },
    #[error("column `{column}`: {value} does not fit ClickHouse {clickhouse}")]
    OutOfRange {
        column: String,
        value: String,
        clickhouse: String,
    },
    #[error("one insert block mixes rows of different schemas")]
    MixedSchemas,
    #[error("refused rows of `{table}` lack the column `{column}` a dead letter needs")]
    MissingColumn { table: String, column: String },
    #[error("`{0}` is not a table somaflow writes to ClickHouse")]
    UnknownTable(String),
    #[error("server version {0:?} is not major.minor…")]
    Version(String),
    #[error("migration {name}: {source}")]
    Migration {
        name: String,
        #[source]
        source: Box<ClickHouseError>,
    },
    #[error("rows could not be arranged: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("the ClickHouse writer of `{0}` stopped unexpectedly")]
    WriterGone(String),
    #[error("cannot stage usage rows: {0}")]
    Staging(String),
}

/// How a failed insert is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server or the network may recover: retry the same block.
    Transient(String),
    /// The server will refuse this block every time: dead letters.
    Permanent(String),
}

/// Server exception codes that mean the block itself (or the table) is
/// wrong, not the moment: unknown table or column, type mismatch, syntax,
/// unparsable data. Every other code (too many parts, memory, timeouts,
/// read-only replicas…) is retried.
const PERMANENT_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    8,   // THERE_IS_NO_COLUMN
    10,  // NOT_FOUND_COLUMN_IN_BLOCK
    16,  // NO_SUCH_COLUMN_IN_TABLE
    20,  // NUMBER_OF_COLUMNS_DOESNT_MATCH
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF (RowBinary not matching the table)
    33,  // CANNOT_READ_ALL_DATA
    36,  // BAD_ARGUMENTS
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    43,  // ILLEGAL_TYPE_OF_ARGUMENT
    44,  // ILLEGAL_COLUMN
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    73,  // UNKNOWN_FORMAT
    81,  // UNKNOWN_DATABASE
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    352, // AMBIGUOUS_COLUMN_NAME
];

/// The exception code in a server message (`Code: 16, e.displayText() = …`
/// on 18.16, `Code: 16. DB::Exception: …` on current releases, or the bare
/// code when the answer had no body).
pub fn exception_code(message: &str) -> Option<u32> {
    if let Ok(code) = message.trim().parse() {
        return Some(code);
    }
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Sorts a failed insert into retry or dead letters.
pub fn classify(error: &clickhouse::error::Error) -> Failure {
    use clickhouse::error::Error;
    let message = error.to_string();
    match error {
        Error::BadResponse(text) => match exception_code(text) {
            Some(code) if PERMANENT_CODES.contains(&code) => Failure::Permanent(text.clone()),
            _ => Failure::Transient(message),
        },
        _ => Failure::Transient(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    #[test]
    fn codes_are_read_from_old_and_new_messages() {
        assert_eq!(
            exception_code("Code: 16, e.displayText() = DB::Exception: No such column x"),
            Some(16)
        );
        assert_eq!(
            exception_code("Code: 252. DB::Exception: Too many parts"),
            Some(252)
        );
        assert_eq!(exception_code("502 Bad Gateway"), None);
        assert_eq!(exception_code(" 60 "), Some(60));
    }

    #[test]
    fn schema_errors_are_permanent_and_load_errors_transient() {
        let refused = Error::BadResponse(
            "Code: 16, e.displayText() = DB::Exception: No such column quality_score in table t"
                .into(),
        );
        assert!(matches!(classify(&refused), Failure::Permanent(m) if m.contains("quality_score")));
        let busy = Error::BadResponse(
            "Code: 252, e.displayText() = DB::Exception: Too many parts (300)".into(),
        );
        assert!(matches!(classify(&busy), Failure::Transient(_)));
        assert!(matches!(classify(&Error::TimedOut), Failure::Transient(_)));
        let gateway = Error::BadResponse("bad gateway".into());
        assert!(matches!(classify(&gateway), Failure::Transient(_)));
    }
}
