from zoo_core.testing.contract import ContractTests


class TestContract(ContractTests):
    plugin = "nce"
