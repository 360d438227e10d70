"""roms"""
