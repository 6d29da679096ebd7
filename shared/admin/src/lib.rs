//! Admin routes: URL prioritization rules and the test-list editor.
