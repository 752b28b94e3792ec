"""Reading the language: SOP markdown -> model, parameters -> schema, lint, graph, catalog."""
