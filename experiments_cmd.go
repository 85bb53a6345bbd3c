package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/eats/eats-orders-tracking/modules/app"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// experimentsCmd is `experiments validate FILE`: the check the config
// repository's CI runs before a file reaches any replica.
func experimentsCmd(environ config.Environment, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		return errors.New("usage: experiments validate FILE")
	}
	defs, err := app.ExperimentDefinitions(environ)
	if err != nil {
		return err
	}
	if err := experiments.ValidateFile(args[1], defs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d experiments known)\n", args[1], len(defs))
	return nil
}
