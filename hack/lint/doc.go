// Package lint holds the project's own checks that golangci-lint cannot
// express; they run as Go tests (make lint, make test-unit).
//
// TestNoJSONFormatting refuses JSON built with fmt format strings
// (fmt.Sprintf(`{"status":%s}`, ...)): %q and %v do not quote or escape the
// way JSON does, so such text breaks on the first unusual value. Build JSON
// with encoding/json from a typed value or a map instead.
package lint
