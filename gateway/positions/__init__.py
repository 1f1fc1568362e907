"""What a client holds: balances per venue account and currency (CollateralInquiry BB ->
CollateralReport BA); positions are to follow."""
