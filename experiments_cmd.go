package main

import (
	"errors"
	"io"
)

func experimentsCmd(args []string, stdout io.Writer) error {
	return errors.New("not wired yet")
}
