"""One module per API noun. A method checks its arguments, names its operation, calls the client."""
