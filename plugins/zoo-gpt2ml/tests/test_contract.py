"""The zoo's plugin contract, run against this plugin."""

from zoo_core.testing.contract import ContractTests


class TestContract(ContractTests):
    plugin = "gpt2ml"
