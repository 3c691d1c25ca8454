import pytest


def pytest_addoption(parser):
    parser.addoption("--colloquy", required=True, help="path to the colloquy binary")
    parser.addoption(
        "--flight-sql-client",
        default=None,
        help="path to arrow-rs's flight_sql_client (required by test_rust_cli_client.py)",
    )


@pytest.fixture(scope="session")
def colloquy_binary(request):
    return request.config.getoption("--colloquy")
