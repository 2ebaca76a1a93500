package invm

import "testing"

func Require(t testing.TB) {}
