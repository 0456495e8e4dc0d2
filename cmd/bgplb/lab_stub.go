//go:build !lab

package main

import "errors"

// The lab subcommand needs the envtest API server and the namespace lab,
// which stay out of the production binary; "make demo" builds with it.
func init() {
	extraCommands["lab"] = func([]string) error {
		return errors.New("this bgplb was built without the lab; run \"make demo\" (or go build -tags lab ./cmd/bgplb)")
	}
}
