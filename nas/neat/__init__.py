"""NEAT (Stanley & Miikkulainen 2002): the population machinery and classic NEAT with its XOR experiment."""
