"""pkmnapi"""
