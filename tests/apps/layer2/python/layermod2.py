NAME = "from the second layer"
