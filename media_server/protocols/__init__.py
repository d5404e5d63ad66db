"""Other products' wire protocols, parsed and written in one place for every route that speaks them."""
