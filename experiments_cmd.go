package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/eats/eats-orders-tracking/modules/app"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// experimentsCmd is `experiments validate FILE`: the check the config
// repository's CI runs before a file reaches any replica. It reads no
// environment: the file is checked against the experiments this version
// defines, whatever the rest of the config says.
func experimentsCmd(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		return errors.New("usage: experiments validate FILE")
	}
	defs := app.ExperimentDefinitions()
	if err := experiments.ValidateFile(args[1], defs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d experiments known)\n", args[1], len(defs))
	return nil
}
