package main

import (
	"bytes"
	"os"
	"testing"
)

func TestFloor(t *testing.T) {
	t.Run("the floor stays under 150 lines of standard library code", func(t *testing.T) {
		src, err := os.ReadFile("main.go")
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(src, []byte("\n")); n >= 150 {
			t.Errorf("main.go has %d lines", n)
		}
		if bytes.Contains(src, []byte(`"github.com/`)) {
			t.Error("main.go imports a non-standard package")
		}
	})
}
