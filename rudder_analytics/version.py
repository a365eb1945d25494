"""The one place the package version lives."""

VERSION = "0.1.0"
