//! The one error type of the crate.

/// Why a pattern, a filter criteria list, an event or a vector file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The pattern breaks a rule of the EventBridge pattern language. The reason is worded like
    /// AWS's own (`Event pattern is not valid. Reason: ...`) so users can search for it.
    #[error("Invalid pattern: {0}")]
    InvalidPattern(String),

    /// More patterns than a mapping may carry.
    #[error("Invalid filter criteria: FilterCriteria.Filters has {count} patterns, at most {max} are allowed")]
    TooManyPatterns { count: usize, max: usize },

    /// One pattern is longer than AWS allows.
    #[error("Invalid filter criteria: FilterCriteria.Filters[{index}].Pattern is {length} characters long, at most {max} are allowed")]
    PatternTooLong { index: usize, length: usize, max: usize },

    /// One pattern of a list failed to compile.
    #[error("Invalid filter criteria: FilterCriteria.Filters[{index}].Pattern: {source}")]
    Filter {
        index: usize,
        #[source]
        source: Box<FilterError>,
    },

    /// The event given to [`crate::test_event_pattern`] is not JSON.
    #[error("Invalid event: {0}")]
    InvalidEvent(String),

    /// A test-vector file is not JSON5 or lacks `Event` / `EventPattern`.
    #[error("Invalid vector file: {0}")]
    InvalidVector(String),
}

/// Shorthand for the pattern errors raised all over the compiler.
pub(crate) fn invalid(reason: impl Into<String>) -> FilterError {
    FilterError::InvalidPattern(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(invalid("Empty arrays are not allowed").to_string(), "Invalid pattern: Empty arrays are not allowed");
        let nested = FilterError::Filter { index: 2, source: Box::new(invalid("x")) };
        assert_eq!(nested.to_string(), "Invalid filter criteria: FilterCriteria.Filters[2].Pattern: Invalid pattern: x");
        let long = FilterError::PatternTooLong { index: 1, length: 5000, max: 4096 };
        assert!(long.to_string().contains("Filters[1]"));
    }
}
