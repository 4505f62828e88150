"""leadheat's version, in a module of its own, so that a module the package itself imports
(the alert sender names the version in its User-Agent) reads it without importing the
package back."""

__version__ = "0.1.0"
