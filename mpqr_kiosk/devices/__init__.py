"""Output and input device ports, each with a real adapter and a fake one chosen by config."""
