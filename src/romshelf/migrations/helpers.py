"""Shared bits for migration scripts."""

# Every table on MariaDB/MySQL: InnoDB, 4-byte UTF-8, binary collation, so that names compare
# exactly as on the file system ("Game.gb" and "game.gb" are two files). Ignored elsewhere.
TABLE_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
