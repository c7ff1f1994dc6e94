//! The dutycard HTTP server. Work in progress: see issue 5.
