//go:build !profile

package main

// startProfile is a no-op in release builds (see profile.go).
func startProfile() (stop func()) { return func() {} }
