// Package tcsim is an in-process ThreatConnect API v3 simulator.
package tcsim
