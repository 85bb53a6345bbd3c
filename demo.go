package main

import (
	"errors"
	"io"

	"github.com/eats/eats-orders-tracking/platform/config"
)

func demo(environ config.Environment, stdout io.Writer) error {
	return errors.New("not wired yet")
}
